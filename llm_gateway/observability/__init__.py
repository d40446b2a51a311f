"""What operators watch a running gateway through: its logs (``logs.py``) and its metrics."""
