# prod: deployed by the manual cd-prod workflow behind the "prod" GitHub environment's reviewers.
# Only what differs from the defaults in variables.tf.
environment = "prod"

# Replace with the frontend's and operators' CIDRs. Validation rejects an empty list and /0 here.
alb_ingress_cidrs = ["203.0.113.20/32"]

deletion_protection = true

enable_waf     = true
waf_rate_limit = 1000

github_deploy_context = "environment:prod"
