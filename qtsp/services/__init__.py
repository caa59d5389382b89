"""Services: open the transaction, call the core, sign, store. The CLI and web layer call these."""
