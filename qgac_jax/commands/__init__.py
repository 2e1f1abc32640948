"""What every command line shares: its arguments and the settings built from them once (`arguments`), what runs
the network (`engines`), one file restored as restore restores it (`jobs`), quiet logs and exit statuses (`logs`)."""
