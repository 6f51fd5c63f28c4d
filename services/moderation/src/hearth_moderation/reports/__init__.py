"""Member reports of posts, comments and members, weighted by the reporter's track record."""
