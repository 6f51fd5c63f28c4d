"""Sentiment monitoring (舆情): negative-sentiment scores of posts and comments, rolling
shares per community, spikes against the community's own baseline, and alerts."""
