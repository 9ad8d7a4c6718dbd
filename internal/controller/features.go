package controller

import (
	"sort"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/gateway-api/pkg/features"
)

// SupportedFeatures are the Gateway API features RAUTA implements with a
// provisioner: exactly the ones whose upstream conformance tests pass
// (conformance/ runs the suite with the kubernetes provisioner's list).
// `rauta controller` writes them into GatewayClass status. Infrastructure
// metadata and requested addresses exist only where each Gateway has
// objects of its own to carry them.
func SupportedFeatures(provisioner string) []features.FeatureName {
	fs := common()
	if provisioner != ProvisionerInProcess {
		fs = append(fs,
			features.SupportGatewayInfrastructure,
			features.SupportGatewayAddressEmpty,
			features.SupportGatewayStaticAddresses,
		)
	}
	return fs
}

// common are the features both provisioners pass.
func common() []features.FeatureName {
	return []features.FeatureName{
		features.SupportGateway,
		features.SupportHTTPRoute,
		features.SupportReferenceGrant,
		features.SupportGatewayPort8080,
		features.SupportGatewayHTTPListenerIsolation,
		features.SupportHTTPRouteQueryParamMatching,
		features.SupportHTTPRouteMethodMatching,
		features.SupportHTTPRouteResponseHeaderModification,
		features.SupportHTTPRouteBackendRequestHeaderModification,
		features.SupportHTTPRoutePortRedirect,
		features.SupportHTTPRouteSchemeRedirect,
		features.SupportHTTPRoutePathRedirect,
		features.SupportHTTPRouteHostRewrite,
		features.SupportHTTPRoutePathRewrite,
		features.SupportHTTPRouteRequestMirror,
		features.SupportHTTPRouteRequestMultipleMirrors,
		features.SupportHTTPRouteRequestPercentageMirror,
		features.SupportHTTPRouteRequestTimeout,
		features.SupportHTTPRouteBackendTimeout,
		features.SupportHTTPRouteParentRefPort,
		// In v1.6.3 its test is a parentRef port no listener has:
		// NoMatchingParent (the same rule as ParentRefPort).
		features.SupportHTTPRouteDestinationPortMatching,
		features.SupportHTTPRouteBackendProtocolH2C,
		features.SupportHTTPRouteBackendProtocolWebSocket,
		features.SupportHTTPRouteNamedRouteRule,
		features.SupportHTTPRoute303RedirectStatusCode,
		features.SupportHTTPRoute307RedirectStatusCode,
		features.SupportHTTPRoute308RedirectStatusCode,
		features.SupportHTTPRouteCORS,
		features.SupportHTTPRouteRetry,
		features.SupportHTTPRouteRetryBackendTimeout,
		features.SupportHTTPRouteRetryConnectionError,
		features.SupportGatewayHTTPSListenerDetectMisdirectedRequests,
		features.SupportGatewayFrontendClientCertificateValidation,
		features.SupportGatewayFrontendClientCertificateValidationInsecureFallback,
		features.SupportGRPCRoute,
		features.SupportGRPCRouteNamedRouteRule,
		features.SupportTLSRoute,
		features.SupportTCPRoute,
		features.SupportUDPRoute,
		features.SupportTLSRouteModeTerminate,
		features.SupportTLSRouteModeMixed,
		features.SupportListenerSet,
		features.SupportBackendTLSPolicy,
		features.SupportBackendTLSPolicySANValidation,
		features.SupportGatewayBackendClientCertificate,
	}
}

// StatusFeatures renders features for GatewayClass status, sorted by name as
// the API's list-map wants them.
func StatusFeatures(fs []features.FeatureName) []gwv1.SupportedFeature {
	out := make([]gwv1.SupportedFeature, len(fs))
	for i, f := range fs {
		out[i] = gwv1.SupportedFeature{Name: gwv1.FeatureName(f)}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
