"""`batch`: apply over a fleet of repos, with branches, commits and a report."""
