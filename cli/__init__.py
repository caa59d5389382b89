"""The ``qtsp`` command line: thin click commands that parse, call a service and render."""
