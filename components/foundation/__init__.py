"""Foundation: the AWS resources the cluster stands on (network, cluster, add-ons, nodes)."""
