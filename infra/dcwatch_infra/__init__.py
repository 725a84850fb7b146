"""CDK app for dcwatch: one stack per pair of sites, built from the dcwatch config file."""
