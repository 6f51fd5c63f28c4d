"""Attachments of posts: sniffed, size-limited, EXIF-stripped uploads in pluggable storage."""
