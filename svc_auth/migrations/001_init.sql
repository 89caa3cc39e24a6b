CREATE TABLE users (
    id                 uuid PRIMARY KEY,
    email              text        NOT NULL UNIQUE CHECK (email = lower(email)),
    password_hash      text        NOT NULL,
    full_name          text        NOT NULL,
    email_verified_at  timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE roles (
    name        text PRIMARY KEY,
    description text NOT NULL
);

CREATE TABLE permissions (
    name        text PRIMARY KEY,
    description text NOT NULL
);

CREATE TABLE role_permissions (
    role       text NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    permission text NOT NULL REFERENCES permissions (name) ON DELETE CASCADE,
    PRIMARY KEY (role, permission)
);

CREATE TABLE user_roles (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role    text NOT NULL REFERENCES roles (name),
    PRIMARY KEY (user_id, role)
);

-- Tokens are stored as SHA-256 digests: a leaked table grants nothing.
CREATE TABLE email_verifications (
    token_hash bytea PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX email_verifications_user ON email_verifications (user_id);

CREATE TABLE refresh_tokens (
    token_hash bytea PRIMARY KEY,
    family_id  uuid        NOT NULL,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issued_at  timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    revoked_at timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

INSERT INTO roles (name, description) VALUES
    ('User', 'Shops: cart, checkout, own orders and profile'),
    ('Seller', 'Sells: own products, their stock and the orders that contain them'),
    ('Admin', 'Runs the shop: users, roles, every order, system configuration');

INSERT INTO permissions (name, description) VALUES
    ('cart:write', 'Add to cart and check out'),
    ('order:read:own', 'Read own orders'),
    ('profile:write', 'Manage own profile'),
    ('product:create', 'Create products'),
    ('product:update', 'Update own products'),
    ('inventory:update', 'Set stock of own products'),
    ('order:read:seller', 'Read orders that contain own products'),
    ('user:manage', 'Read and search every user'),
    ('role:manage', 'Assign roles'),
    ('order:manage', 'Read and move every order'),
    ('catalog:manage', 'Manage categories, brands and any product'),
    ('discount:manage', 'Manage coupons and campaigns'),
    ('payment:refund', 'Refund payments'),
    ('system:config', 'Cache, templates and other configuration');

INSERT INTO role_permissions (role, permission) VALUES
    ('User', 'cart:write'), ('User', 'order:read:own'), ('User', 'profile:write'),
    ('Seller', 'cart:write'), ('Seller', 'order:read:own'), ('Seller', 'profile:write'),
    ('Seller', 'product:create'), ('Seller', 'product:update'), ('Seller', 'inventory:update'),
    ('Seller', 'order:read:seller');
INSERT INTO role_permissions (role, permission) SELECT 'Admin', name FROM permissions;
