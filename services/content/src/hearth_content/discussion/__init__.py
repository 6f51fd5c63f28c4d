"""Discussion on posts: threaded comments, reactions, mentions."""
