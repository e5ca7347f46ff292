"""The night as plain functions, and the Airflow shapes over them."""
