-- Who to write to: each user's address and name, from svc_auth's and svc_user's events, as order and
-- payment events carry only a user id. `updated_at` is the time of the event that set the name, so an
-- older event arriving late never overwrites a newer name.
CREATE TABLE recipients (
    user_id    uuid PRIMARY KEY,
    email      text        NOT NULL,
    full_name  text        NOT NULL,
    updated_at timestamptz NOT NULL
);

INSERT INTO templates (name, subject, body, placeholders) VALUES
(
    'order-confirmed',
    'Your order {orderNumber} is confirmed',
    'Hello {fullName},

thank you for your order {orderNumber}: it is paid ({totalAmount}) and confirmed, and we are
preparing it now. You can follow it here:

{link}

-- The Shop team
',
    ARRAY['fullName', 'orderNumber', 'totalAmount', 'link']
),
(
    'order-cancelled',
    'Your order {orderNumber} was cancelled',
    'Hello {fullName},

your order {orderNumber} ({totalAmount}) was cancelled: {reason}. If you had paid for it, we refund
the payment and send you another mail when the money is on its way back.

{link}

-- The Shop team
',
    ARRAY['fullName', 'orderNumber', 'totalAmount', 'reason', 'link']
),
(
    'payment-refunded',
    'Refund of {amount} for order {orderNumber}',
    'Hello {fullName},

we have refunded {amount} of your payment for order {orderNumber}. Depending on your bank it may take
a few days to show on your statement.

{link}

-- The Shop team
',
    ARRAY['fullName', 'orderNumber', 'amount', 'link']
);
