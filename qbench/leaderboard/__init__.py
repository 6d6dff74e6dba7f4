"""The IQA leaderboard: statistics, records and tables."""
