"""Human review of posts (初审 + 复审): per-community policy, stages, claims, decisions."""
