"""The lab's printers: the admin Printers page (add, edit, test the connection, pause, retire)."""
