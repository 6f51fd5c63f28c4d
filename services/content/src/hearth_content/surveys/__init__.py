"""Surveys (调查): questions, an open window, one response per member, results, CSV."""
