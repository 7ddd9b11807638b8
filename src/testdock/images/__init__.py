"""What the images are: the four phases as data, the templates, and the files `testdock init` writes."""
