/* Progressive enhancement only: checks GB 11643 / GB 32100 check characters as the clerk types.
   The server checks again on submit; the page works without this script. */
(function () {
  "use strict";
  var W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], R = "10X98765432";
  var U = "0123456789ABCDEFGHJKLMNPQRTUWXY", UW = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
  function ric(c) { if (!/^\d{17}[\dX]$/.test(c)) return null; var s = 0;
    for (var i = 0; i < 17; i++) s += +c[i] * W[i]; return R[s % 11]; }
  function uscc(c) { if (c.length !== 18) return null; var s = 0;
    for (var i = 0; i < 17; i++) { var v = U.indexOf(c[i]); if (v < 0) return null; s += v * UW[i]; }
    return U[(31 - s % 31) % 31]; }
  function check(input) {
    var hint = document.getElementById(input.getAttribute("aria-describedby"));
    var c = input.value.trim().toUpperCase(), kind = input.getAttribute("data-idcheck");
    hint.className = "hint"; hint.textContent = "";
    if (!c) return;
    if (c.length < 18) { hint.textContent = "已输入 " + c.length + " 位，共 18 位"; return; }
    var want = ric(c);
    if (want !== null) {
      if (want === c[17]) { hint.className = "hint ok"; hint.textContent = "身份证号码校验通过"; return; }
      hint.className = "hint bad"; hint.textContent = "身份证号码第18位校验码错误：为“" + c[17] + "”，应为“" + want + "”"; return;
    }
    var u = kind === "any" ? uscc(c) : null;
    if (u !== null) {
      if (u === c[17]) { hint.className = "hint ok"; hint.textContent = "统一社会信用代码校验通过"; return; }
      hint.className = "hint bad"; hint.textContent = "统一社会信用代码第18位校验码错误：为“" + c[17] + "”，应为“" + u + "”"; return;
    }
    hint.className = "hint bad"; hint.textContent = "格式不正确：应为18位身份证号码" + (kind === "any" ? "或统一社会信用代码" : "");
  }
  var inputs = document.querySelectorAll("input[data-idcheck]");
  for (var i = 0; i < inputs.length; i++) {
    inputs[i].addEventListener("input", function (e) { check(e.target); });
    if (inputs[i].value) check(inputs[i]);
  }
})();
