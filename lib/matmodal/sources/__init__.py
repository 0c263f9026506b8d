"""Sources: getting data from Alexandria and the Materials Project, or from a local mirror."""
