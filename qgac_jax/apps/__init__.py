"""Applications built on the restorer and the command lines' engines: the web page and the archive job on Ray."""
