"""Evidence: a hashed snapshot of the item at every action concerning it, kept under a
retention policy and legal holds, exported as signed case bundles."""
