-- The subscription of a sign-up whose Checkout completed with its payment still
-- settling (SEPA, ACH): when Stripe says that subscription turned active, the sign-up
-- it pays for is activated.
ALTER TABLE pending_signups ADD COLUMN subscription TEXT;
