"""Steps the images' builds run with the plugin's Python: light installs, package data."""
