"""Command-line entry points behind ``tools/*.py`` (each has ``main(argv)``)."""
