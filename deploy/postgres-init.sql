-- One database per service (CONTRACT.md section 1); each service migrates its own on start.
CREATE DATABASE auth_db;
CREATE DATABASE user_db;
CREATE DATABASE order_db;
CREATE DATABASE product_db;
CREATE DATABASE payment_db;
CREATE DATABASE inventory_db;
CREATE DATABASE discount_db;
CREATE DATABASE notification_db;
