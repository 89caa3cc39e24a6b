-- SMS and push beside email, templates per channel and locale with versions, delivery tracking.

-- `templates` becomes the registry of what the code sends: its kind of message (which preference
-- governs it), the channels it goes out on and the placeholders the code supplies. The texts move to
-- `template_versions`, one row per edit of a (name, channel, locale) variant; the highest version is
-- the current one, and a version without a body retires the variant (kept for the history).
ALTER TABLE templates
    ADD COLUMN kind text NOT NULL DEFAULT 'orderUpdates'
        CHECK (kind IN ('orderUpdates', 'payment', 'security', 'marketing')),
    ADD COLUMN channels text[] NOT NULL DEFAULT ARRAY['email', 'sms', 'push'];
UPDATE templates SET kind = 'security', channels = ARRAY['email'] WHERE name = 'email-verification';
UPDATE templates SET kind = 'payment' WHERE name = 'payment-refunded';

CREATE TABLE template_versions (
    name       text        NOT NULL REFERENCES templates (name),
    channel    text        NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    locale     text        NOT NULL CHECK (locale IN ('en', 'vi')),
    version    int         NOT NULL CHECK (version > 0),
    subject    text,  -- the mail's subject or the push's title; never for SMS
    body       text,  -- NULL: this version retires the variant
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, channel, locale, version),
    CHECK ((channel = 'sms') = (subject IS NULL) OR body IS NULL)
);
INSERT INTO template_versions (name, channel, locale, version, subject, body, created_at)
SELECT name, 'email', 'en', 1, subject, body, updated_at FROM templates;
ALTER TABLE templates DROP COLUMN subject, DROP COLUMN body, DROP COLUMN updated_at;

-- What svc_user told us of each user: the phone number for SMS and the preferences document, each with
-- the time of the event that set it, so an older event arriving late changes nothing.
CREATE TABLE contacts (
    user_id        uuid PRIMARY KEY,
    phone          text,
    phone_at       timestamptz,
    preferences    jsonb,
    preferences_at timestamptz
);

-- Web Push subscriptions (the browser's PushSubscription): one per endpoint, owned by one user.
CREATE TABLE push_subscriptions (
    id         uuid PRIMARY KEY,
    user_id    uuid        NOT NULL,
    endpoint   text        NOT NULL UNIQUE,
    p256dh     text        NOT NULL,
    auth       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id, created_at);

-- The VAPID key of dev and test, made at first start when VAPID_PRIVATE_KEY is not set (never elsewhere).
CREATE TABLE dev_vapid_key (
    id          int PRIMARY KEY CHECK (id = 1),
    private_pem text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Each notification is a row of the delivery queue: one per event, channel and recipient (an address, a
-- phone number, a push subscription id). QUEUED -> SENDING -> SENT -> DELIVERED, or FAILED / BOUNCED.
-- `next_attempt_at` is when a QUEUED row is due, and for a SENDING row the end of the claim of the
-- worker sending it (a worker that died leaves it to be claimed again once that passes).
ALTER TABLE notifications DROP CONSTRAINT notifications_channel_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_channel_check CHECK (channel IN ('email', 'sms', 'push'));
ALTER TABLE notifications DROP CONSTRAINT notifications_status_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_status_check
    CHECK (status IN ('QUEUED', 'SENDING', 'SENT', 'DELIVERED', 'FAILED', 'BOUNCED'));
ALTER TABLE notifications DROP CONSTRAINT notifications_event_id_channel_key;
ALTER TABLE notifications ADD CONSTRAINT notifications_once UNIQUE (event_id, channel, recipient);
ALTER TABLE notifications ALTER COLUMN subject DROP NOT NULL;
ALTER TABLE notifications ALTER COLUMN attempts SET DEFAULT 0;
ALTER TABLE notifications
    ADD COLUMN locale          text        NOT NULL DEFAULT 'en',
    ADD COLUMN template_version int,
    ADD COLUMN send_body       text,  -- the body with its secrets (a verification link) until it is out
    ADD COLUMN provider_id     text,
    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN updated_at      timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN delivered_at    timestamptz;
CREATE INDEX notifications_due ON notifications (channel, next_attempt_at) WHERE status IN ('QUEUED', 'SENDING');
CREATE UNIQUE INDEX notifications_provider ON notifications (channel, provider_id) WHERE provider_id IS NOT NULL;
CREATE INDEX notifications_created ON notifications (created_at DESC, id DESC);
CREATE INDEX notifications_recipient ON notifications (recipient, created_at DESC);

INSERT INTO template_versions (name, channel, locale, version, subject, body) VALUES
('email-verification', 'email', 'vi', 1, 'Xác minh địa chỉ email của bạn',
'Xin chào {fullName},

vui lòng xác nhận {email} là địa chỉ email của bạn bằng cách mở liên kết sau:

{link}

Liên kết hết hạn lúc {expiresAt}. Nếu bạn không tạo tài khoản, hãy bỏ qua email này.

-- Đội ngũ Shop
'),
('order-confirmed', 'email', 'vi', 1, 'Đơn hàng {orderNumber} đã được xác nhận',
'Xin chào {fullName},

cảm ơn bạn đã đặt đơn hàng {orderNumber}: đơn đã được thanh toán ({totalAmount}) và xác nhận, chúng tôi
đang chuẩn bị hàng. Theo dõi đơn hàng tại:

{link}

-- Đội ngũ Shop
'),
('order-confirmed', 'sms', 'en', 1, NULL, 'Shop: order {orderNumber} is confirmed ({totalAmount}). Track it: {link}'),
('order-confirmed', 'sms', 'vi', 1, NULL, 'Shop: don hang {orderNumber} da duoc xac nhan ({totalAmount}). Theo doi: {link}'),
('order-confirmed', 'push', 'en', 1, 'Order {orderNumber} confirmed', 'Paid ({totalAmount}) and being prepared.'),
('order-confirmed', 'push', 'vi', 1, 'Đơn hàng {orderNumber} đã xác nhận', 'Đã thanh toán ({totalAmount}), đang chuẩn bị hàng.'),
('order-cancelled', 'email', 'vi', 1, 'Đơn hàng {orderNumber} đã bị huỷ',
'Xin chào {fullName},

đơn hàng {orderNumber} ({totalAmount}) đã bị huỷ: {reason}. Nếu bạn đã thanh toán, chúng tôi sẽ hoàn tiền
và gửi email khác khi tiền đang được hoàn về.

{link}

-- Đội ngũ Shop
'),
('order-cancelled', 'sms', 'en', 1, NULL, 'Shop: order {orderNumber} ({totalAmount}) was cancelled: {reason}. {link}'),
('order-cancelled', 'sms', 'vi', 1, NULL, 'Shop: don hang {orderNumber} ({totalAmount}) da bi huy. {link}'),
('order-cancelled', 'push', 'en', 1, 'Order {orderNumber} cancelled', 'It was cancelled: {reason}.'),
('order-cancelled', 'push', 'vi', 1, 'Đơn hàng {orderNumber} đã bị huỷ', 'Đơn hàng {orderNumber} ({totalAmount}) đã bị huỷ.'),
('payment-refunded', 'email', 'vi', 1, 'Hoàn tiền {amount} cho đơn hàng {orderNumber}',
'Xin chào {fullName},

chúng tôi đã hoàn {amount} cho đơn hàng {orderNumber}. Tuỳ ngân hàng, có thể mất vài ngày để khoản tiền
hiện trên sao kê của bạn.

{link}

-- Đội ngũ Shop
'),
('payment-refunded', 'sms', 'en', 1, NULL, 'Shop: we refunded {amount} for order {orderNumber}. {link}'),
('payment-refunded', 'sms', 'vi', 1, NULL, 'Shop: da hoan {amount} cho don hang {orderNumber}. {link}'),
('payment-refunded', 'push', 'en', 1, 'Refund of {amount}', 'For order {orderNumber}; your bank may take a few days.'),
('payment-refunded', 'push', 'vi', 1, 'Hoàn tiền {amount}', 'Cho đơn hàng {orderNumber}; ngân hàng có thể mất vài ngày.'),
('low-stock', 'email', 'vi', 1, 'Sắp hết hàng: {productName}',
'Xin chào {fullName},

{productName} sắp hết hàng: còn {available} sản phẩm để bán, bằng hoặc dưới ngưỡng {threshold} bạn đã
đặt. Hãy nhập thêm hàng trước khi hết:

{link}

-- Đội ngũ Shop
'),
('low-stock', 'sms', 'en', 1, NULL, 'Shop: {productName} is low: {available} left (threshold {threshold}). {link}'),
('low-stock', 'sms', 'vi', 1, NULL, 'Shop: {productName} sap het: con {available} (nguong {threshold}). {link}'),
('low-stock', 'push', 'en', 1, 'Low stock: {productName}', '{available} left, at or below your threshold of {threshold}.'),
('low-stock', 'push', 'vi', 1, 'Sắp hết hàng: {productName}', 'Còn {available}, bằng hoặc dưới ngưỡng {threshold}.');
