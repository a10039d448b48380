#!/usr/bin/env bash
# tests/lib/pki.sh DIR -- throwaway CA and certificates for the outbox test bed.
#
# Creates in DIR (does nothing if DIR/ca.pem already exists):
#   ca.pem ca.key                 test CA (not trusted by anything else)
#   server.pem server.key         DNS:localhost, IP:127.0.0.1, signed by the CA
#   wrongname.pem wrongname.key   DNS:wrong.example only, signed by the CA
#   expired.pem expired.key       localhost/127.0.0.1, signed by the CA, expired 30 days ago
#   future.pem future.key         localhost/127.0.0.1, signed by the CA, valid from 30 days on
#   weak.pem weak.key             localhost/127.0.0.1, signed by the CA with SHA-1
#   selfsigned.pem selfsigned.key localhost/127.0.0.1, self-signed (not from the CA)
#   client.pem client.key         client certificate (CN=alice, clientAuth), signed by the CA
#   clientonly.pem clientonly.key localhost/127.0.0.1, signed by the CA, but its extended key
#                                 usage is clientAuth only: not for a server
#   server.sha256                 SHA-256 fingerprint of server.pem's DER, AB:CD:..:EF
#   server.spki                   base64 SHA-256 of server.pem's SubjectPublicKeyInfo DER
#
# Keys are EC P-256 (fast to make). Valid certificates run from 1 day ago to
# 10 years ahead. Needs Debian's /usr/bin/python3 with python3-cryptography
# (a pyenv python3 may shadow it on PATH, so it is called by full path).
set -euo pipefail

if [[ $# -ne 1 ]]; then
	echo "usage: $0 DIR" >&2
	exit 2
fi
dir=$1
if [[ -e $dir/ca.pem ]]; then
	exit 0
fi
PY=${TESTBED_PYTHON:-/usr/bin/python3}
if ! "$PY" -c 'import cryptography' 2>/dev/null; then
	echo "pki.sh: $PY with the cryptography module is needed (apt-get install python3-cryptography)" >&2
	exit 1
fi
mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.pki.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

"$PY" - "$tmp" <<'PYEOF'
import base64, datetime, hashlib, ipaddress, os, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID

out = sys.argv[1]
now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
day = datetime.timedelta(days=1)

def newkey():
    return ec.generate_private_key(ec.SECP256R1())

def write(name, cert, key):
    with open(os.path.join(out, name + ".pem"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    path = os.path.join(out, name + ".key")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))

def cn(s):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "outbox test bed"),
                      x509.NameAttribute(NameOID.COMMON_NAME, s)])

ca_key = newkey()
ca_name = cn("outbox test CA")
ca = (x509.CertificateBuilder()
      .subject_name(ca_name).issuer_name(ca_name)
      .public_key(ca_key.public_key())
      .serial_number(x509.random_serial_number())
      .not_valid_before(now - day).not_valid_after(now + 3650 * day)
      .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
      .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                   key_encipherment=False, data_encipherment=False,
                                   key_agreement=False, key_cert_sign=True, crl_sign=True,
                                   encipher_only=False, decipher_only=False), critical=True)
      .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
      .sign(ca_key, hashes.SHA256()))

def leaf(subject, dns, ips, start, end, issuer=None, client=False, digest=None, eku=None):
    key = newkey()
    issuer_cert, issuer_key = issuer if issuer else (None, key)
    b = (x509.CertificateBuilder()
         .subject_name(cn(subject))
         .issuer_name(issuer_cert.subject if issuer_cert else cn(subject))
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(start).not_valid_after(end)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                      key_encipherment=False, data_encipherment=False,
                                      key_agreement=False, key_cert_sign=False, crl_sign=False,
                                      encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.ExtendedKeyUsage(eku or
             ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [ExtendedKeyUsageOID.SERVER_AUTH])),
             critical=False)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    names = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if client:
        names.append(x509.RFC822Name("alice@example.org"))
    if names:
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if issuer_cert is not None:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_cert.public_key()), critical=False)
    return b.sign(issuer_key, digest or hashes.SHA256()), key

valid = (now - day, now + 3650 * day)
server, server_key = leaf("localhost", ["localhost"], ["127.0.0.1"], *valid, issuer=(ca, ca_key))
write("server", server, server_key)
c, k = leaf("wrong.example", ["wrong.example"], [], *valid, issuer=(ca, ca_key))
write("wrongname", c, k)
c, k = leaf("localhost", ["localhost"], ["127.0.0.1"], now - 400 * day, now - 30 * day,
            issuer=(ca, ca_key))
write("expired", c, k)
c, k = leaf("localhost", ["localhost"], ["127.0.0.1"], *valid)
write("selfsigned", c, k)
c, k = leaf("localhost", ["localhost"], ["127.0.0.1"], now + 30 * day, now + 400 * day,
            issuer=(ca, ca_key))
write("future", c, k)
c, k = leaf("localhost", ["localhost"], ["127.0.0.1"], *valid, issuer=(ca, ca_key),
            digest=hashes.SHA1())
write("weak", c, k)
c, k = leaf("alice", [], [], *valid, issuer=(ca, ca_key), client=True)
write("client", c, k)
c, k = leaf("localhost", ["localhost"], ["127.0.0.1"], *valid, issuer=(ca, ca_key),
            eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
write("clientonly", c, k)

der = server.public_bytes(serialization.Encoding.DER)
with open(os.path.join(out, "server.sha256"), "w") as f:
    f.write(":".join("%02X" % b for b in hashlib.sha256(der).digest()) + "\n")
spki = server.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
with open(os.path.join(out, "server.spki"), "w") as f:
    f.write(base64.b64encode(hashlib.sha256(spki).digest()).decode() + "\n")

# ca last: its presence marks a complete set
write("ca", ca, ca_key)
PYEOF

chmod 0644 "$tmp"/*.pem "$tmp"/server.sha256 "$tmp"/server.spki
# Move everything into place, ca.pem last (its presence means "done").
for f in "$tmp"/*; do
	case ${f##*/} in ca.pem) continue ;; esac
	mv -f "$f" "$dir/"
done
mv -f "$tmp/ca.pem" "$dir/ca.pem"
