"""Workflow validation, one concern per module.

Two sections, so a team can tell them apart: *n8n validity* (what the pinned n8n refuses on import or activation,
or what fails at run time) and *project conventions* (what this repository asks of its own workflows: the name
prefix, declared credentials and placeholders). `workflows.validate` runs them all.
"""
