"""Polls (投票): single or multiple choice, anonymous or named, one ballot per member."""
