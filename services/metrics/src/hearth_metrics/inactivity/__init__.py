"""Inactivity detection: member.inactive / member.active once per transition, per community."""
