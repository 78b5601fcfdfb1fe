"""Admin area: the lab manager keeps PrintLab true to the lab and recovers when something goes wrong."""
