// MikroBill hotspot login: CHAP hashing, voucher QR scanning. Written for old phone
// browsers too: no modules, no arrow functions.
(function () {
  // MD5 (RFC 1321) of a byte array, as 32 lowercase hex digits.
  function md5Hex(bytes) {
    var shifts = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
    var k = [];
    var i;
    for (i = 0; i < 64; i++) {
      k[i] = Math.floor(Math.abs(Math.sin(i + 1)) * 4294967296) | 0;
    }
    var n = bytes.length;
    var blocks = ((n + 8) >>> 6) + 1;
    var w = [];
    for (i = 0; i < blocks * 16; i++) w[i] = 0;
    for (i = 0; i < n; i++) w[i >> 2] |= (bytes[i] & 255) << ((i % 4) * 8);
    w[n >> 2] |= 128 << ((n % 4) * 8);
    w[blocks * 16 - 2] = (n * 8) | 0;
    w[blocks * 16 - 1] = Math.floor(n / 536870912);
    var h = [0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476];
    for (var at = 0; at < w.length; at += 16) {
      var a = h[0], b = h[1], c = h[2], d = h[3];
      for (i = 0; i < 64; i++) {
        var f, g, round = i >> 4;
        if (round === 0) { f = (b & c) | (~b & d); g = i; }
        else if (round === 1) { f = (d & b) | (~d & c); g = (5 * i + 1) % 16; }
        else if (round === 2) { f = b ^ c ^ d; g = (3 * i + 5) % 16; }
        else { f = c ^ (b | ~d); g = (7 * i) % 16; }
        var s = shifts[round * 4 + (i % 4)];
        var x = (a + f + k[i] + w[at + g]) | 0;
        a = d; d = c; c = b;
        b = (b + ((x << s) | (x >>> (32 - s)))) | 0;
      }
      h[0] = (h[0] + a) | 0; h[1] = (h[1] + b) | 0;
      h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0;
    }
    var hex = '';
    for (i = 0; i < 16; i++) {
      var byte = (h[i >> 2] >>> ((i % 4) * 8)) & 255;
      hex += (byte < 16 ? '0' : '') + byte.toString(16);
    }
    return hex;
  }

  // Bytes of a string whose characters are bytes already (what RouterOS's octal escapes
  // in $(chap-id) and $(chap-challenge) turn into).
  function rawBytes(s) {
    var out = [];
    for (var i = 0; i < s.length; i++) out.push(s.charCodeAt(i) & 255);
    return out;
  }

  // UTF-8 bytes of what the user typed.
  function utf8Bytes(s) {
    return rawBytes(unescape(encodeURIComponent(s)));
  }

  // The CHAP response RouterOS expects as the password: MD5(id, password, challenge).
  function chapResponse(id, password, challenge) {
    return md5Hex(rawBytes(id).concat(utf8Bytes(password), rawBytes(challenge)));
  }

  // The voucher in a scanned QR code: the code (and password) of a login link as printed
  // on MikroBill vouchers, or the text itself.
  function codeFromScan(text) {
    var t = String(text || '').replace(/^\s+|\s+$/g, '');
    try {
      var url = new URL(t);
      var code = url.searchParams.get('username') || url.searchParams.get('code');
      if (code) return { code: code, password: url.searchParams.get('password') || '' };
    } catch (e) { /* not a link: the text is the code */ }
    return { code: t, password: '' };
  }

  window.MikroBill = { md5Hex: md5Hex, chapResponse: chapResponse, codeFromScan: codeFromScan };

  var form = document.getElementById('login');
  if (!form) return;
  var user = document.getElementById('username');
  var pass = document.getElementById('password');

  // What is posted as `password` goes in a field of its own: the typed one keeps what was
  // typed, so a login sent again after going back (the browser restores the page as it was
  // left) hashes the typed password, never the hash posted the first time. Without script
  // the typed field posts itself.
  var sent = document.createElement('input');
  sent.type = 'hidden';
  form.appendChild(sent);

  form.addEventListener('submit', function () {
    user.value = user.value.replace(/^\s+|\s+$/g, '');
    // A voucher without its own password logs in with its code as the password.
    var password = pass.value === '' ? user.value : pass.value;
    var chap = window.mikrobillChap;
    pass.removeAttribute('name');
    sent.name = 'password';
    sent.value = chap ? chapResponse(chap[0], password, chap[1]) : password;
  });

  // Scanning needs the browser's own QR reader; without it the code is typed.
  var scan = document.getElementById('scan');
  var photo = document.getElementById('scan-photo');
  var failed = document.getElementById('scan-failed');
  if (!('BarcodeDetector' in window) || !window.createImageBitmap || !scan || !photo) return;
  scan.hidden = false;
  scan.addEventListener('click', function () { photo.click(); });
  photo.addEventListener('change', function () {
    var file = photo.files && photo.files[0];
    if (!file) return;
    failed.hidden = true;
    var detector = new window.BarcodeDetector({ formats: ['qr_code'] });
    window.createImageBitmap(file)
      .then(function (image) { return detector.detect(image); })
      .then(function (found) {
        if (!found.length) throw new Error('no code');
        var v = codeFromScan(found[0].rawValue);
        user.value = v.code;
        pass.value = v.password;
      })
      .catch(function () { failed.hidden = false; user.focus(); });
  });
})();
