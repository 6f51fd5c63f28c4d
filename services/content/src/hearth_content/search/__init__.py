"""Full-text search over posts and comments (Chinese and English), two backends by dialect."""
