"""The gateways' signatures, checked against published vectors where one exists, else by hand.

Known vectors: VNPay's IPN hash from the `vnpay` npm library's test suite (secret `test_secret`), and
ZaloPay's callback sample from its API docs (docs.zalopay.vn, callback), signed with the public
sandbox key2 of app 2553. MoMo publishes no vector: its raw strings are built here by hand from the
documented field order and hashed with hashlib's HMAC directly.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import pytest

from payment_gateways import common, momo, vnpay, zalopay

pytestmark = pytest.mark.offline


def _hmac(algorithm: str, key: str, message: str) -> str:
    return hmac.new(key.encode(), message.encode(), algorithm).hexdigest()


VNPAY_IPN = {
    "vnp_Amount": "1000000",
    "vnp_BankCode": "NCB",
    "vnp_BankTranNo": "VNP14422574",
    "vnp_CardType": "ATM",
    "vnp_OrderInfo": "Thanh toan don hang 2024-05-21T02:17:31.249Z",
    "vnp_PayDate": "20240521091806",
    "vnp_ResponseCode": "00",
    "vnp_TmnCode": "TEST_TMN_CODE",
    "vnp_TransactionNo": "14422574",
    "vnp_TransactionStatus": "00",
    "vnp_TxnRef": "1716257871703",
}
VNPAY_IPN_HASH = (
    "649982421beb422556a1374713c74e58e716ecbd05007c0c0e1f7effdfaf361d"
    "bf146889ca446139afe11b9954c4d5c486e99e3b86fcfab6957f29eb0be72895"
)


def test_vnpay_ipn_hash_matches_the_published_vector() -> None:
    assert vnpay.secure_hash("test_secret", VNPAY_IPN) == VNPAY_IPN_HASH
    assert vnpay.verify("test_secret", {**VNPAY_IPN, "vnp_SecureHash": VNPAY_IPN_HASH.upper()})


def test_vnpay_refuses_any_changed_parameter_or_another_secret() -> None:
    signed = {**VNPAY_IPN, "vnp_SecureHash": VNPAY_IPN_HASH}
    assert not vnpay.verify("test_secret", {**signed, "vnp_Amount": "2000000"})
    assert not vnpay.verify("other_secret", signed)
    assert not vnpay.verify("test_secret", {**signed, "vnp_SecureHash": ""})
    # vnp_SecureHashType is not part of the signed data (2.1.0)
    assert vnpay.verify("test_secret", {**signed, "vnp_SecureHashType": "HmacSHA512"})


def test_vnpay_payment_url_is_sorted_form_encoded_and_signed_over_exactly_that() -> None:
    params = {
        "vnp_Version": "2.1.0",
        "vnp_Command": "pay",
        "vnp_TmnCode": "SHOPDEV1",
        "vnp_Amount": vnpay.amount_of(Decimal("125000.50")).__str__(),
        "vnp_TxnRef": "abc",
        "vnp_OrderInfo": "Thanh toan don hang ORD-1",
        "vnp_ReturnUrl": "http://shop.local/api/payments/vnpay/return",
        "vnp_CreateDate": vnpay.timestamp(datetime(2024, 1, 1, 17, 30, 5, tzinfo=UTC)),
    }
    url = vnpay.signed_url("https://pay.example/vpcpay.html", "s3cret", params)
    query = urlsplit(url).query
    data, _, signature = query.partition("&vnp_SecureHash=")
    assert data == (
        "vnp_Amount=12500050&vnp_Command=pay&vnp_CreateDate=20240102003005"
        "&vnp_OrderInfo=Thanh+toan+don+hang+ORD-1"
        "&vnp_ReturnUrl=http%3A%2F%2Fshop.local%2Fapi%2Fpayments%2Fvnpay%2Freturn"
        "&vnp_TmnCode=SHOPDEV1&vnp_TxnRef=abc&vnp_Version=2.1.0"
    )
    assert signature == _hmac("sha512", "s3cret", data)
    assert vnpay.verify("s3cret", dict(parse_qsl(query)))


def test_vnpay_querydr_and_refund_hash_their_fields_joined_by_pipes_in_the_documented_order() -> None:
    query = vnpay.QueryRequest(
        vnp_RequestId="r1",
        vnp_TmnCode="SHOPDEV1",
        vnp_TxnRef="abc",
        vnp_OrderInfo="info",
        vnp_TransactionDate="20240101000000",
        vnp_CreateDate="20240101010000",
        vnp_IpAddr="10.0.0.1",
    )
    query.sign("s3cret")
    expected = "r1|2.1.0|querydr|SHOPDEV1|abc|20240101000000|20240101010000|10.0.0.1|info"
    assert query.vnp_SecureHash == _hmac("sha512", "s3cret", expected)
    refund = vnpay.RefundRequest(
        vnp_RequestId="r2",
        vnp_TmnCode="SHOPDEV1",
        vnp_TransactionType=vnpay.PARTIAL_REFUND,
        vnp_TxnRef="abc",
        vnp_Amount="500000",
        vnp_OrderInfo="refund",
        vnp_TransactionNo="123",
        vnp_TransactionDate="20240101000000",
        vnp_CreateBy="admin@shop.local",
        vnp_CreateDate="20240102000000",
        vnp_IpAddr="10.0.0.1",
    )
    refund.sign("s3cret")
    expected = (
        "r2|2.1.0|refund|SHOPDEV1|03|abc|500000|123|20240101000000|admin@shop.local|20240102000000"
        "|10.0.0.1|refund"
    )
    assert refund.vnp_SecureHash == _hmac("sha512", "s3cret", expected)
    assert refund.verify("s3cret") and not refund.verify("other")


def test_vnpay_dates_are_vietnam_time_and_amounts_hundredths() -> None:
    assert vnpay.timestamp(datetime(2024, 5, 21, 2, 18, 6, tzinfo=UTC)) == "20240521091806"
    assert vnpay.parse_timestamp("20240521091806") == datetime(2024, 5, 21, 2, 18, 6, tzinfo=UTC)
    assert vnpay.amount_of(Decimal("10000")) == 1_000_000
    assert vnpay.vnd_of("1234550") == Decimal("12345.5")


def test_momo_create_and_ipn_sign_the_documented_raw_strings() -> None:
    create = momo.CreateRequest(
        partner_code="MOMO",
        request_id="req-1",
        amount=50_000,
        order_id="ord-1",
        order_info="pay with MoMo",
        redirect_url="https://shop.local/return",
        ipn_url="https://shop.local/ipn",
    )
    create.sign("F8BBA842ECF85", "secret")
    raw = (
        "accessKey=F8BBA842ECF85&amount=50000&extraData=&ipnUrl=https://shop.local/ipn&orderId=ord-1"
        "&orderInfo=pay with MoMo&partnerCode=MOMO&redirectUrl=https://shop.local/return"
        "&requestId=req-1&requestType=captureWallet"
    )
    assert create.signature == _hmac("sha256", "secret", raw)
    ipn = momo.Ipn(
        partner_code="MOMO",
        order_id="ord-1",
        request_id="req-1",
        amount=50_000,
        order_info="pay with MoMo",
        trans_id=4088878653,
        result_code=0,
        message="Successful.",
        pay_type="qr",
        response_time=1721720663942,
    )
    ipn.sign("F8BBA842ECF85", "secret")
    raw = (
        "accessKey=F8BBA842ECF85&amount=50000&extraData=&message=Successful.&orderId=ord-1"
        "&orderInfo=pay with MoMo&orderType=momo_wallet&partnerCode=MOMO&payType=qr&requestId=req-1"
        "&responseTime=1721720663942&resultCode=0&transId=4088878653"
    )
    assert ipn.signature == _hmac("sha256", "secret", raw)
    assert ipn.verify("F8BBA842ECF85", "secret")
    tampered = momo.Ipn(**{**{f: getattr(ipn, f) for f in ipn.__struct_fields__}, "amount": 1})
    assert not tampered.verify("F8BBA842ECF85", "secret")


def test_momo_query_and_refund_raw_strings() -> None:
    query = momo.QueryRequest(partner_code="MOMO", request_id="q1", order_id="ord-1")
    query.sign("ak", "sk")
    assert query.signature == _hmac(
        "sha256", "sk", "accessKey=ak&orderId=ord-1&partnerCode=MOMO&requestId=q1"
    )
    refund = momo.RefundRequest(
        partner_code="MOMO", order_id="rf-1", request_id="r1", amount=1000, trans_id=77, description="sorry"
    )
    refund.sign("ak", "sk")
    raw = "accessKey=ak&amount=1000&description=sorry&orderId=rf-1&partnerCode=MOMO&requestId=r1&transId=77"
    assert refund.signature == _hmac("sha256", "sk", raw)


ZALOPAY_SAMPLE_DATA = (
    '{"app_id":2553,"app_trans_id":"200904_2553_1598435687208","app_time":1599189392817,"app_user":"demo",'
    '"amount":10000,"embed_data":"{\\"merchantinfo\\":\\"embeddata123\\",\\"promotioninfo\\":\\"\\"}",'
    '"item":"[{\\"itemid\\":\\"knb\\",\\"itemname\\":\\"kim nguyen bao\\",\\"itemprice\\":198400,'
    '\\"itemquantity\\":1}]","zp_trans_id":200904000000389,"server_time":1599189413498,"channel":38,'
    '"merchant_user_id":"7ZMSl3nEg5sOUJzOLSoUFT8xKNQVaLOLXHB--8Eytqc","user_fee_amount":0,"discount_amount":0}'
)
ZALOPAY_SAMPLE_MAC = "d8d33baf449b31d7f9b94fa50d7c942c08cd4d83f28fa185557da21acb104f67"
ZALOPAY_SANDBOX_KEY2 = "kLtgPl8HHhfvMuDHPwKfgfsY4Ydm9eIz"  # app 2553's, published for the sandbox


def test_zalopay_callback_mac_matches_the_published_sample() -> None:
    assert zalopay.mac(ZALOPAY_SANDBOX_KEY2, ZALOPAY_SAMPLE_DATA) == ZALOPAY_SAMPLE_MAC
    assert zalopay.mac_matches(ZALOPAY_SANDBOX_KEY2, ZALOPAY_SAMPLE_DATA, ZALOPAY_SAMPLE_MAC)
    assert not zalopay.mac_matches(
        ZALOPAY_SANDBOX_KEY2, ZALOPAY_SAMPLE_DATA.replace("10000", "1000"), ZALOPAY_SAMPLE_MAC
    )


def test_zalopay_create_query_refund_and_redirect_macs() -> None:
    create = zalopay.CreateRequest(
        app_id=2553,
        app_user="u1",
        app_trans_id="240101_abc",
        app_time=1704067200000,
        amount=50_000,
        description="d",
        callback_url="https://shop.local/ipn",
        embed_data='{"redirecturl":"https://shop.local/return"}',
    )
    data = '2553|240101_abc|u1|50000|1704067200000|{"redirecturl":"https://shop.local/return"}|[]'
    assert create.mac_data() == data
    query = zalopay.QueryRequest(app_id=2553, app_trans_id="240101_abc")
    assert query.mac_data("key1") == "2553|240101_abc|key1"
    refund = zalopay.RefundRequest(
        m_refund_id="240101_2553_r1", app_id=2553, zp_trans_id=99, amount=1000, timestamp=17, description="d"
    )
    assert refund.mac_data() == "2553|99|1000|d|17"
    redirect = {"appid": "2553", "apptransid": "240101_abc", "pmcid": "38", "bankcode": "", "amount": "50000"}
    assert (
        zalopay.redirect_data({**redirect, "discountamount": "0", "status": "1"})
        == "2553|240101_abc|38||50000|0|1"
    )
    assert zalopay.app_trans_id(datetime(2024, 1, 1, 18, 0, tzinfo=UTC), "x") == "240102_x"


def test_signatures_compare_in_either_case_and_only_whole_vnd_passes_for_momo_and_zalopay() -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    assert common.same_signature(digest, digest.upper())
    assert not common.same_signature(digest, digest[:-1])
    assert common.whole_vnd(Decimal("125000.00")) == 125000
    with pytest.raises(ValueError):
        common.whole_vnd(Decimal("125000.50"))
