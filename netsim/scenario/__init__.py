"""Scenario files: load, validate, run, render and report."""
