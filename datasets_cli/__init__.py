"""The `owbench` command line: parse arguments, call the library, print with rich. No logic here."""
