"""One review queue for held items, reports and appeals: claim, assign, SLA age, decisions."""
