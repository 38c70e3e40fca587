"""rallycall's web console for crisis managers: the red button, procedures, runs, the live
bridge and reports, served by the stack (`python -m console` runs it alone)."""
