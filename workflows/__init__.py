"""The platform's n8n workflows: definitions in git, their validator, and the idempotent seeder."""
