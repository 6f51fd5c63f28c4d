"""Member data: profiles with e-mail and phone encrypted at rest, export and pseudonymisation."""
