"""Renderers of a run's one view (`domain.run_view.RunView`): they lay it out, never recompute it."""
