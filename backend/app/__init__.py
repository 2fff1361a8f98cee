"""The application's entry points: command-line pieces shared by several commands."""
