-- A second database on the Prefect server's PostgreSQL: railwatch's counts store.
CREATE ROLE railwatch LOGIN PASSWORD 'railwatch';
CREATE DATABASE railwatch OWNER railwatch;
