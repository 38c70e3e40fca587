"""Workflows: orchestration only (timers, signals, activities); every side effect is an activity."""
