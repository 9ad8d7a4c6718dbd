package controller

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	authnclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/false-systems/rauta/internal/configstream"
	"github.com/false-systems/rauta/internal/ir"
	"github.com/false-systems/rauta/internal/provision"
	"github.com/false-systems/rauta/internal/proxy"
	"github.com/false-systems/rauta/internal/resources"
	"github.com/false-systems/rauta/internal/translate"
)

// Provisioners.
const (
	ProvisionerKubernetes = "kubernetes"
	ProvisionerInProcess  = "inprocess"
)

// caSecret holds the config stream's CA in the controller's namespace.
const caSecret = "rauta-controller-ca"

// provisioner is the controller's state in the kubernetes provisioner mode:
// the config stream server (kept across API sessions, so connected data
// planes and their reports survive a session restart) and what it serves.
type provisioner struct {
	stream *configstream.Server
	// encoder keeps unchanged routes' encodings between syncs (only the
	// sync goroutine uses it).
	encoder configstream.Encoder
	// session holds the current API session's restatus (asks for the
	// Programmed overlay to be redone); the stream server, which outlives
	// sessions, calls it when a pod connects, leaves or reports.
	session atomic.Pointer[func()]

	// pubMu orders status hand-overs: a restatus cannot hand the status
	// writer an older translation after a sync handed it a newer one.
	pubMu sync.Mutex
	last  *published

	mu         sync.Mutex
	serving    bool
	ca         *configstream.CA
	controller string // host:port data planes dial
	serverName string
}

// newProvisioner makes the kubernetes provisioner's state; its stream
// server authenticates data planes with TokenReviews through reviews.
func newProvisioner(reviews authnclient.TokenReviewInterface) *provisioner {
	p := &provisioner{}
	p.stream = &configstream.Server{
		Auth:      &tokenReviews{reviews: reviews, now: time.Now},
		Authorize: mayRead,
		OnChange: func() {
			if restatus := p.session.Load(); restatus != nil {
				(*restatus)()
			}
		},
	}
	return p
}

// ensureCA reads the CA Secret, creating it on first start. Two replicas
// racing to create it both end up with the one that won.
func ensureCA(ctx context.Context, cl client.Client, namespace string) (*configstream.CA, error) {
	key := types.NamespacedName{Namespace: namespace, Name: caSecret}
	for range 3 {
		var s corev1.Secret
		err := cl.Get(ctx, key, &s)
		if err == nil {
			return configstream.ParseCA(s.Data["ca.crt"], s.Data["ca.key"])
		}
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("get Secret %s: %w", key, err)
		}
		ca, err := configstream.NewCA("rauta-controller-ca", time.Now())
		if err != nil {
			return nil, err
		}
		s = corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: caSecret, Labels: map[string]string{provision.LabelManagedBy: provision.ManagedBy}},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{"ca.crt": ca.CertPEM, "ca.key": ca.KeyPEM},
		}
		err = cl.Create(ctx, &s)
		if err == nil {
			return ca, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("create Secret %s: %w", key, err)
		}
	}
	return nil, fmt.Errorf("secret %s: created and deleted concurrently", key)
}

// start brings up the config stream on the first session that can: the CA
// exists and the controller's own Service has a ClusterIP.
func (p *provisioner) start(ctx context.Context, c *Controller, cl client.Client, r client.Reader) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.serving {
		return nil
	}
	ns, svcName := c.cfg.Namespace, c.cfg.ControllerService
	ca, err := ensureCA(ctx, cl, ns)
	if err != nil {
		return err
	}
	var svc corev1.Service
	if err := r.Get(ctx, types.NamespacedName{Namespace: ns, Name: svcName}, &svc); err != nil {
		return fmt.Errorf("the controller's Service %s/%s (data planes dial it): %w", ns, svcName, err)
	}
	port := int32(0)
	for _, sp := range svc.Spec.Ports {
		if sp.Name == "config" || port == 0 {
			port = sp.Port
		}
	}
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone || port == 0 {
		return fmt.Errorf("the controller's Service %s/%s needs a ClusterIP and a port named config", ns, svcName)
	}
	dnsNames := []string{svcName + "." + ns + ".svc", svcName, svcName + "." + ns, svcName + "." + ns + ".svc.cluster.local"}
	cert, err := ca.IssueServing(dnsNames, []net.IP{net.ParseIP(svc.Spec.ClusterIP)}, time.Now())
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.cfg.ConfigListen)
	if err != nil {
		return fmt.Errorf("config stream listener %s: %w", c.cfg.ConfigListen, err)
	}
	hs := &http.Server{
		Handler:           p.stream.Handler(),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13},
		ReadHeaderTimeout: 10 * time.Second,
		// Streams are long; reads are small requests (reports).
		ReadTimeout:    30 * time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 16 << 10,
	}
	go func() {
		<-c.runCtx.Done()
		_ = hs.Close()
	}()
	go func() {
		if err := hs.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.logger.Error("config stream server", "err", err)
		}
	}()
	p.ca, p.serving = ca, true
	p.controller = net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(port)))
	p.serverName = dnsNames[0]
	c.logger.Info("config stream serving", "listen", ln.Addr().String(), "dial", p.controller, "server_name", p.serverName)
	return nil
}

// parameters resolves every owned class's and Gateway's parametersRef:
// problems for translate, merged parameters per Gateway for the
// provisioner.
type parameters struct {
	class, gateway map[string]string               // problems ("" = fine), translate's input
	merged         map[string]provision.Parameters // by Gateway key
}

func (c *Controller) resolveParameters(ctx context.Context, r client.Reader, res *resources.Resources) parameters {
	out := parameters{class: map[string]string{}, gateway: map[string]string{}, merged: map[string]provision.Parameters{}}
	classParams := map[string]provision.Parameters{}
	for _, gc := range res.GatewayClasses {
		if string(gc.Spec.ControllerName) != c.cfg.ControllerName || gc.Spec.ParametersRef == nil {
			continue
		}
		ref := gc.Spec.ParametersRef
		ns := ""
		if ref.Namespace != nil {
			ns = string(*ref.Namespace)
		}
		p, problem := c.readParameters(ctx, r, string(ref.Group), string(ref.Kind), ns, ref.Name)
		out.class[gc.Name] = problem
		classParams[gc.Name] = p
	}
	for _, gw := range res.Gateways {
		key := gw.Namespace + "/" + gw.Name
		merged := classParams[string(gw.Spec.GatewayClassName)]
		if infra := gw.Spec.Infrastructure; infra != nil && infra.ParametersRef != nil {
			ref := infra.ParametersRef
			p, problem := c.readParameters(ctx, r, string(ref.Group), string(ref.Kind), gw.Namespace, ref.Name)
			out.gateway[key] = problem
			merged = provision.Merge(merged, p)
		}
		out.merged[key] = merged
	}
	return out
}

func (c *Controller) readParameters(ctx context.Context, r client.Reader, group, kind, namespace, name string) (provision.Parameters, string) {
	gvk := provision.ParametersGVK
	if group != gvk.Group || kind != gvk.Kind {
		return provision.Parameters{}, fmt.Sprintf("%s %s/%s: RAUTA reads only %s.%s", kind, namespace, name, gvk.Kind, gvk.Group)
	}
	if namespace == "" {
		return provision.Parameters{}, fmt.Sprintf("%s %s: a namespace is required", kind, name)
	}
	if !c.paramsInstalled.Load() {
		return provision.Parameters{}, fmt.Sprintf("%s %s/%s: the %s CRD is not installed (it comes with the Helm chart)", kind, namespace, name, kind)
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	if err := r.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, u); err != nil {
		if apierrors.IsNotFound(err) {
			return provision.Parameters{}, fmt.Sprintf("%s %s/%s not found", kind, namespace, name)
		}
		return provision.Parameters{}, fmt.Sprintf("%s %s/%s: %v", kind, namespace, name, err)
	}
	p, err := provision.ParseParameters(u)
	if err != nil {
		return provision.Parameters{}, fmt.Sprintf("%s %s/%s: %v", kind, namespace, name, err)
	}
	return p, ""
}

// provisionJob is one sync's wanted objects.
type provisionJob struct {
	want map[string]provision.Objects
	keep map[string]bool
}

// syncProvisioned is sync in the kubernetes provisioner mode: translate with
// each Gateway on its own data plane, publish each Gateway's config to its
// pods, hand the wanted objects to the provisioning worker, and status (with
// Programmed from what the pods report) to the status writer.
func (c *Controller) syncProvisioned(ctx context.Context, r client.Reader, res *resources.Resources, statuses *mailbox, jobs *latest[provisionJob]) {
	params := c.resolveParameters(ctx, r, res)
	services := map[string]*corev1.Service{}
	for _, svc := range res.Services {
		services[svc.Namespace+"/"+svc.Name] = svc
	}
	addrs := map[string][]gwv1.GatewayStatusAddress{}
	for _, gw := range res.Gateways {
		addrs[gw.Namespace+"/"+gw.Name] = provision.Addresses(services[gw.Namespace+"/"+provision.Name(gw.Name)])
	}
	translateStart := time.Now()
	result := translate.Translate(res, translate.Options{
		ControllerName:    c.cfg.ControllerName,
		Provisioned:       true,
		GatewayAddresses:  addrs,
		ClassParameters:   params.class,
		GatewayParameters: params.gateway,
		Cache:             &c.translations,
	})
	if c.logger.Enabled(ctx, slog.LevelDebug) {
		reused, translated := c.translations.Counts()
		c.logger.Debug("sync: translated", "took", time.Since(translateStart).String(),
			"routes_reused_total", reused, "routes_translated_total", translated)
	}

	gateways := map[string]*gwv1.Gateway{}
	for _, gw := range res.Gateways {
		gateways[gw.Namespace+"/"+gw.Name] = gw
	}
	perGateway := map[string]*ir.Snapshot{}
	for _, l := range result.IR.Listeners {
		if perGateway[l.Gateway] == nil {
			perGateway[l.Gateway] = &ir.Snapshot{}
		}
		perGateway[l.Gateway].Listeners = append(perGateway[l.Gateway].Listeners, l)
	}
	classOK := map[string]bool{}
	for _, cs := range result.Status.GatewayClasses {
		classOK[cs.Name] = meta.IsStatusConditionTrue(cs.Status.Conditions, string(gwv1.GatewayClassConditionStatusAccepted))
	}
	configs := map[string]configstream.Config{}
	provisioned := map[string]*gwv1.Gateway{}
	job := provisionJob{want: map[string]provision.Objects{}, keep: map[string]bool{}}
	c.prov.mu.Lock()
	ready, ca, controllerAddr, serverName := c.prov.serving, c.prov.ca, c.prov.controller, c.prov.serverName
	c.prov.mu.Unlock()
	for i := range result.Status.Gateways {
		gs := &result.Status.Gateways[i]
		key := gs.Namespace + "/" + gs.Name
		gw := gateways[key]
		if gw == nil || !classOK[string(gw.Spec.GatewayClassName)] {
			continue
		}
		if params.gateway[key] != "" {
			job.keep[key] = true // leave what exists; what to build is unknown
			continue
		}
		// Every provisioned Gateway gets a config, an empty one when it is
		// not accepted: its pods then become ready serving nothing, rather
		// than waiting forever for a first config.
		snap := perGateway[key]
		if snap == nil {
			snap = &ir.Snapshot{}
		}
		configs[key] = c.prov.encoder.NewConfig(key, gw.Generation, snap)
		provisioned[key] = gw
	}
	c.prov.encoder.EndRound()
	c.prov.stream.Publish(configs)
	c.logger.Debug("sync: published", "took_since_translate", time.Since(translateStart).String())
	// The objects to provision are built after publishing: a route change
	// reaches the data planes without waiting for them.
	if ready {
		for key, gw := range provisioned {
			snap := configs[key].Snapshot
			job.want[key] = provision.Desired(provision.Input{
				Gateway: gw, Params: params.merged[key], Image: c.cfg.DataPlaneImage,
				Controller: controllerAddr, ServerName: serverName, CAPEM: string(ca.CertPEM),
				ServedPorts:    servedPorts(snap, false),
				ServedUDPPorts: servedPorts(snap, true),
				Tracing:        tracingOf(c.cfg.Tracing),
			})
		}
		jobs.put(job)
	}
	c.prov.pubMu.Lock()
	c.prov.last = &published{res: res, status: result.Status, gateways: provisioned, streaming: ready}
	status := c.publishStatus(statuses, c.prov.last)
	c.prov.pubMu.Unlock()
	if err := c.gw.Apply(&ir.Snapshot{}, status); err != nil {
		c.logger.Error("apply", "err", err)
	}
}

// tracingOf is what data planes need of the controller's traces settings.
func tracingOf(t proxy.TracingOptions) provision.Tracing {
	return provision.Tracing{Endpoint: t.Endpoint, SampleRatio: t.SampleRatio, QueueSize: t.QueueSize, ServiceName: t.ServiceName}
}

// servedPorts are the ports of a Gateway's snapshot, in which its accepted
// ListenerSets' listeners are: those of UDP listeners, or of the others.
func servedPorts(snap *ir.Snapshot, udp bool) []int32 {
	ports := make([]int32, 0, len(snap.Listeners))
	for _, l := range snap.Listeners {
		if (l.Protocol == ir.ProtocolUDP) == udp {
			ports = append(ports, int32(l.Port))
		}
	}
	return ports
}

// published is the last sync's translation. A data plane connecting,
// leaving or reporting changes only Programmed, so it costs an overlay of
// this (restatus), not a new translation: at a thousand routes that is the
// difference between microseconds and tens of milliseconds per report, and
// a report's translation would delay the next route change.
type published struct {
	res    *resources.Resources
	status *translate.Status // as translated, before the Programmed overlay
	// gateways are the provisioned Gateways, by key: their Programmed
	// comes from their pods' reports.
	gateways  map[string]*gwv1.Gateway
	streaming bool
}

// publishStatus hands the status writer p's status with Programmed overlaid
// from the pods' current reports, and returns it. The overlay works on
// copies of the Gateway statuses: p stays as translated. Callers hold
// c.prov.pubMu.
func (c *Controller) publishStatus(statuses *mailbox, p *published) *translate.Status {
	st := *p.status
	st.Gateways = slices.Clone(p.status.Gateways)
	overlaid := map[string]gatewayServing{}
	for i := range st.Gateways {
		gs := &st.Gateways[i]
		gw := p.gateways[gs.Namespace+"/"+gs.Name]
		if gw == nil {
			continue
		}
		gs.Status = *gs.Status.DeepCopy()
		overlaid[gs.Namespace+"/"+gs.Name] = c.overlayProgrammed(gs, gw, p.streaming)
	}
	if len(st.ListenerSets) > 0 && len(overlaid) > 0 {
		st.ListenerSets = slices.Clone(p.status.ListenerSets)
		overlayListenerSets(st.ListenerSets, p.res.ListenerSets, overlaid)
	}
	statuses.put(statusJob{res: p.res, status: &st})
	return &st
}

// restatus redoes the Programmed overlay of the last sync's translation.
func (c *Controller) restatus(statuses *mailbox) {
	c.prov.pubMu.Lock()
	defer c.prov.pubMu.Unlock()
	if c.prov.last != nil {
		c.publishStatus(statuses, c.prov.last)
	}
}

// startRestatus makes the config stream's OnChange (a data plane
// connected, left or reported) redo the Programmed overlay of this session's
// last translation, until ctx ends. It runs before the session's first sync:
// the last session's translation is not this session's.
func (c *Controller) startRestatus(ctx context.Context, statuses *mailbox) {
	c.prov.pubMu.Lock()
	c.prov.last = nil
	c.prov.pubMu.Unlock()
	signal := make(chan struct{}, 1)
	restatus := func() {
		select {
		case signal <- struct{}{}:
		default:
		}
	}
	c.prov.session.Store(&restatus)
	go c.restatusLoop(ctx, statuses, signal)
}

// restatusLoop runs restatus when signalled until ctx ends; a burst of
// reports costs one or two overlays.
func (c *Controller) restatusLoop(ctx context.Context, statuses *mailbox, signal <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-signal:
			c.restatus(statuses)
		}
	}
}

// gatewayServing is what a provisioned Gateway's overlay found: its
// Programmed condition and the listeners (by IR listener name) its data
// plane could not bind. A Gateway that is not accepted has none.
type gatewayServing struct {
	programmed *metav1.Condition
	unbound    map[string]string
}

// overlayProgrammed sets the Gateway's and its listeners' Programmed from
// what its data-plane pods report: True only when a pod serves the
// Gateway's current generation; a listener a pod could not bind is False.
func (c *Controller) overlayProgrammed(gs *translate.GatewayStatus, gw *gwv1.Gateway, streaming bool) gatewayServing {
	st := &gs.Status
	if !meta.IsStatusConditionTrue(st.Conditions, string(gwv1.GatewayConditionAccepted)) {
		return gatewayServing{}
	}
	key := gs.Namespace + "/" + gs.Name
	gen := gw.Generation
	pods := c.prov.stream.Pods(key)
	serving := 0
	unbound := map[string]string{}
	refused := ""
	for _, p := range pods {
		if p.Report.Generation != gen || p.Report.Version == "" {
			continue
		}
		if p.Report.Error != "" {
			refused = p.Report.Error
			continue
		}
		serving++
		for _, u := range p.Report.Unbound {
			unbound[u.Listener] = u.Error
		}
	}
	set := func(ok bool, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: string(gwv1.GatewayConditionProgrammed), Status: conditionStatus(ok), Reason: reason, Message: msg, ObservedGeneration: gen,
		})
	}
	svc := provision.Name(gw.Name)
	switch {
	case !streaming:
		set(false, string(gwv1.GatewayReasonPending), "the controller's config stream is not serving yet")
	case len(st.Addresses) == 0:
		set(false, string(gwv1.GatewayReasonAddressNotAssigned), fmt.Sprintf("Service %s has no address yet", svc))
	case unassigned(gw, st.Addresses) != "":
		set(false, string(gwv1.GatewayReasonAddressNotUsable), fmt.Sprintf("spec.addresses: %s was not assigned to Service %s by its load balancer", unassigned(gw, st.Addresses), svc))
	case refused != "" && serving == 0:
		set(false, string(gwv1.GatewayReasonInvalid), "the data plane refused the configuration: "+refused)
	case serving == 0:
		set(false, string(gwv1.GatewayReasonPending), fmt.Sprintf("waiting for a data-plane pod of Deployment %s to serve generation %d (%d connected)", svc, gen, len(pods)))
	default:
		set(true, string(gwv1.GatewayReasonProgrammed), fmt.Sprintf("%d data-plane pod(s) serve generation %d", serving, gen))
	}
	for i := range st.Listeners {
		ls := &st.Listeners[i]
		port, udp := listenerPort(gw, ls.Name)
		msg, bad := unbound[translate.ListenerName(gs.Namespace+"/"+gs.Name, port, udp)]
		if !bad {
			continue
		}
		meta.SetStatusCondition(&ls.Conditions, metav1.Condition{
			Type: string(gwv1.ListenerConditionProgrammed), Status: metav1.ConditionFalse,
			Reason: string(gwv1.ListenerReasonPending), Message: "the data plane could not bind the port: " + msg, ObservedGeneration: gen,
		})
	}
	return gatewayServing{programmed: meta.FindStatusCondition(st.Conditions, string(gwv1.GatewayConditionProgrammed)), unbound: unbound}
}

// unassigned returns the first IP address spec.addresses asks for that the
// Gateway does not have, or "".
func unassigned(gw *gwv1.Gateway, have []gwv1.GatewayStatusAddress) string {
	got := map[string]bool{}
	for _, a := range have {
		got[a.Value] = true
	}
	for _, a := range gw.Spec.Addresses {
		if a.Value == "" || (a.Type != nil && *a.Type != gwv1.IPAddressType) {
			continue
		}
		if ip, err := netip.ParseAddr(a.Value); err == nil && !got[ip.String()] {
			return ip.String()
		}
	}
	return ""
}

// listenerPort is the port of a Gateway's listener, and whether it is UDP.
func listenerPort(gw *gwv1.Gateway, name gwv1.SectionName) (int32, bool) {
	for _, l := range gw.Spec.Listeners {
		if l.Name == name {
			return int32(l.Port), l.Protocol == gwv1.UDPProtocolType
		}
	}
	return 0, false
}

func conditionStatus(ok bool) metav1.ConditionStatus {
	if ok {
		return metav1.ConditionTrue
	}
	return metav1.ConditionFalse
}

// provisionLoop applies the newest wanted objects; a failed job is retried
// after a back-off unless a newer one arrived.
func (c *Controller) provisionLoop(ctx context.Context, a *provision.Applier, jobs *latest[provisionJob]) {
	backoff := time.Second
	for {
		job, ok := jobs.take(ctx)
		if !ok {
			return
		}
		n, err := a.Apply(ctx, job.want, job.keep)
		c.provisionWrites.Add(float64(n))
		if err == nil {
			backoff = time.Second
			continue
		}
		c.logger.Error("provision data planes; retrying", "err", err, "retry_in", backoff.String())
		jobs.putIfEmpty(job)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// watchProvisioned adds the provisioner's own watches: its Deployments and
// ServiceAccounts (so the applier reads them from the cache) and
// GatewayParameters when the CRD is installed.
func (c *Controller) watchProvisioned(ctx context.Context, ch cache.Cache, cl client.Client, poke func()) error {
	h := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		DeleteFunc: func(any) { poke() },
		UpdateFunc: func(any, any) { poke() },
	}
	for _, obj := range []client.Object{&appsv1.Deployment{}, &corev1.ServiceAccount{}} {
		if _, err := ch.GetInformer(ctx, obj); err != nil {
			return fmt.Errorf("watch %T: %w", obj, err)
		}
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(provision.ParametersGVK)
	if _, err := cl.RESTMapper().RESTMapping(provision.ParametersGVK.GroupKind(), provision.ParametersGVK.Version); err != nil {
		if meta.IsNoMatchError(err) {
			c.paramsInstalled.Store(false)
			c.logger.Warn("the GatewayParameters CRD is not installed; parametersRefs to it are refused (install it with the Helm chart)")
			return nil
		}
		return fmt.Errorf("GatewayParameters CRD: %w", err)
	}
	inf, err := ch.GetInformer(ctx, u)
	if err != nil {
		return fmt.Errorf("watch GatewayParameters: %w", err)
	}
	if _, err := inf.AddEventHandler(h); err != nil {
		return fmt.Errorf("watch GatewayParameters: %w", err)
	}
	c.paramsInstalled.Store(true)
	return nil
}

// startStream brings the config stream up once the caches can answer,
// retrying while the controller's Service or CA cannot be had.
func (c *Controller) startStream(ctx context.Context, cl client.Client, r client.Reader, poke func()) {
	backoff := time.Second
	for {
		err := c.prov.start(ctx, c, cl, r)
		if err == nil {
			poke()
			return
		}
		c.logger.Error("config stream not started; data planes cannot be provisioned yet", "err", err, "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}
