"""Relearning: the data stages and a re-fine-tune chained into one job, and the end-to-end demo."""
