package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
)

// cookieName is the login cookie.
const cookieName = "evs_console"

// cookieValue is what the login cookie holds for token: an HMAC of a fixed
// text keyed by the token, so the token itself is never stored in the
// browser, and a new token logs everyone out.
func cookieValue(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("evs console session"))
	return hex.EncodeToString(m.Sum(nil))
}

// equal compares secrets in constant time.
func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// authorized reports whether r carries the token: as a bearer token or the
// login cookie.
func (c *Console) authorized(r *http.Request) bool {
	if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		return equal(strings.TrimSpace(tok), c.cfg.Token)
	}
	ck, err := r.Cookie(cookieName)
	return err == nil && equal(ck.Value, c.cookie)
}

// sameOrigin reports whether a state-changing request comes from a page of
// the console: browsers send Origin (or at least Referer) with a POST, and
// a cross-site form's differs. Requests with neither (curl) pass.
func sameOrigin(r *http.Request) bool {
	// Go 1.25's CrossOriginProtection checks Sec-Fetch-Site, then Origin.
	if err := http.NewCrossOriginProtection().Check(r); err != nil {
		return false
	}
	if ref := r.Header.Get("Referer"); ref != "" && r.Header.Get("Origin") == "" {
		u, err := url.Parse(ref)
		return err == nil && u.Host == r.Host
	}
	return true
}

type loginPage struct {
	base
	Failed bool
}

func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	if c.cfg.Token == "" {
		http.Redirect(w, r, "/streams", http.StatusSeeOther)
		return
	}
	c.render(w, r, "login.html", loginPage{base: base{Title: "Log in", StoreURL: "", LoggedIn: false}})
}

// login checks the token of the login form and sets the cookie.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if c.cfg.Token == "" {
		http.Redirect(w, r, "/streams", http.StatusSeeOther)
		return
	}
	if !sameOrigin(r) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if !equal(r.PostFormValue("token"), c.cfg.Token) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		c.render(w, r, "login.html", loginPage{base: base{Title: "Log in"}, Failed: true})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: c.cookie, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/streams", http.StatusSeeOther)
}

// logout clears the cookie.
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
