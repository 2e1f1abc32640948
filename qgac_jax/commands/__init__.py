"""What every command line shares, whatever its job: quiet third parties, one line for Ctrl-C, exit statuses."""
