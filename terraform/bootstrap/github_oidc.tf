# One GitHub Actions identity provider per account; each environment's deploy role
# (root module, iam_deploy.tf) trusts it for its own repository ref or environment.
resource "aws_iam_openid_connect_provider" "github" {
  url            = "https://token.actions.githubusercontent.com"
  client_id_list = ["sts.amazonaws.com"]
  # No thumbprint_list: AWS validates GitHub's certificate against its own trusted CAs.
}
