/** @module The login form (htpasswd, users-file and S3-key accounts), and what an external issuer's users are told. */
import { Csrf, href, Layout, type View } from './layout.js'

export function LoginPage(p: { v: View; error?: string; user?: string; next: string }) {
  const { v } = p
  return (
    <Layout v={v} title="Log in">
      <div class="login panel pad">
        <h1>Log in</h1>
        {v.kind === 'accounts' && (
          <>
            <p class="sub">
              {v.s3Keys
                ? <>With an S3 access key ID and its secret key that may read this registry's bucket, as you give them to <code>docker login {v.host}</code>.</>
                : <>With the user name and password you give <code>docker login {v.host}</code>.</>}
            </p>
            {p.error && <div class="notice error" role="alert">{p.error}</div>}
            <form method="post" action={href(v, '/login')}>
              <Csrf v={v} />
              <input type="hidden" name="next" value={p.next} />
              <label for="user">{v.s3Keys ? 'Access key ID' : 'User'}</label>
              <input id="user" type="text" name="user" value={p.user ?? ''} autocomplete="username" required autofocus />
              <label for="password">{v.s3Keys ? 'Secret key' : 'Password'}</label>
              <input id="password" type="password" name="password" autocomplete="current-password" required />
              <button class="primary" type="submit">Log in</button>
            </form>
          </>
        )}
        {v.kind === 'external' && (
          <p>This registry's accounts are managed by an external token service{v.realm ? <> (<code>{v.realm}</code>)</> : ''}; the web UI cannot log you in. It shows what anonymous clients may pull; use <code>docker login {v.host}</code> for the rest.</p>
        )}
        {v.kind === 'open' && <p>This registry has no authentication: everyone may do everything. <a href={href(v, '/')}>Browse the repositories</a>.</p>}
      </div>
    </Layout>
  )
}
