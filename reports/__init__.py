"""Figures, tables, statistics and report assembly from stored results."""
